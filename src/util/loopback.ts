/** Whether a URL's host is this machine (localhost, 127.0.0.0/8, ::1): plain HTTP is acceptable there. */
export function isLoopbackHost(hostname: string): boolean {
  return (
    hostname === 'localhost' ||
    hostname === '::1' ||
    hostname === '[::1]' ||
    /^127(\.\d{1,3}){3}$/.test(hostname)
  );
}

/** isLoopbackHost for a parsed URL. */
export function isLoopback(url: URL): boolean {
  return isLoopbackHost(url.hostname);
}
