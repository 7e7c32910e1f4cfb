/**
 * The studio's JSON API, on the same origin and under the same token as the
 * page: relative URLs (`api/...`) resolve under `/<token>/`.
 */

/** An API answer that was not a success, with the server's message. */
export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

/** GET `api/<route>?<params>` and the decoded JSON; empty parameters are left out. */
export async function api(route, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') query.set(key, String(value));
  }
  const search = query.toString();
  const response = await fetch(`api/${route}${search ? `?${search}` : ''}`, {
    headers: { accept: 'application/json' },
    credentials: 'omit',
  });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(body?.error?.message ?? `the studio answered ${response.status}`, response.status);
  }
  return body;
}
