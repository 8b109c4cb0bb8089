import { ApiClient, type ConnectionOptions, resolveBaseUrl, resolveToken } from "../../client.ts";
import { HttpBackend } from "./api.ts";

/**
 * The API and token the console talks to, found as every other command finds them: `--base-url` or
 * SKIFF_URL, `--token` or SKIFF_TOKEN or `$SKIFF_HOME/admin.token` (see ../../client.ts).
 */
export function connectBackend(opts: ConnectionOptions): HttpBackend {
  return new HttpBackend(new ApiClient(resolveBaseUrl(opts), resolveToken(opts)));
}
