/**
 * @sigstore/sign, loaded the first time an anchor is made. With the HTTP stack under it, it
 * takes about 0.3 s to import: every `tlog` command and every start of the service would pay
 * that before doing anything (`tlog serve` binds its port after its imports), while only a
 * tenant that anchors, and only when it uploads, needs it. Its types are imported as types.
 */
type SigstoreSign = typeof import('@sigstore/sign');

let loading: Promise<SigstoreSign> | null = null;

export function sigstoreSign(): Promise<SigstoreSign> {
  loading ??= import('@sigstore/sign');
  return loading;
}
