/**
 * The log at a URL prefix, as the CLI's --url reads it: with the read token of
 * TLOG_READ_TOKEN when set (a private tenant), never from the command line, where every user
 * of the machine could read it in the process list.
 */
import { urlSource, type TlogSource } from '../client/source.js';

export const READ_TOKEN_ENV = 'TLOG_READ_TOKEN';

export function cliUrlSource(url: string, env: NodeJS.ProcessEnv = process.env): TlogSource {
  const token = env[READ_TOKEN_ENV];
  return urlSource(url, token ? { readToken: token } : {});
}
