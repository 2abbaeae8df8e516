/**
 * Debian's nginx on loopback, started with a generated minimal configuration (one worker, no
 * access log, sendfile, open-file cache): the static server the tile GET runs compare against.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort } from './servers.js';

export interface Nginx {
  readonly child: ChildProcess;
  readonly url: string;
  stop(): void;
}

/**
 * nginx serving `root`, its prefix (configuration, logs, temp files) under `workDir`/nginx; resolves
 * once `probePath` answers 200, or null (saying why) if nginx is not installed or does not come up.
 */
export async function startNginx(root: string, workDir: string, probePath: string): Promise<Nginx | null> {
  const nginx = ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
  if (!nginx) {
    console.log('nginx: NOT INSTALLED, so no comparison. Install it with: apt-get update && apt-get install -y nginx');
    return null;
  }
  const port = await freePort();
  const prefix = path.join(workDir, 'nginx');
  for (const d of ['', 'logs', 'tmp']) mkdirSync(path.join(prefix, d), { recursive: true });
  const conf = path.join(prefix, 'nginx.conf');
  writeFileSync(
    conf,
    `${process.getuid?.() === 0 ? 'user root;\n' : ''}daemon off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 65;
  default_type application/octet-stream;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  open_file_cache max=10000 inactive=60s;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location / {
      add_header Cache-Control "public, max-age=604800, immutable";
      add_header Access-Control-Allow-Origin "*";
    }
  }
}
`,
  );
  const child = spawn(nginx, ['-p', prefix, '-c', conf], { stdio: ['ignore', 'inherit', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`${url}${probePath}`);
      await r.arrayBuffer();
      if (r.status === 200) return { child, url, stop: () => void child.kill('SIGQUIT') };
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  console.log(`nginx: did not come up (see ${prefix}/logs/error.log)`);
  return null;
}
