/** The label a watch entry is known by in metrics, alerts and the status page (kept free of zod: the daemon imports it). */
export function watchLabel(e: { address: string; sni?: string; name?: string }): string {
  return e.name ?? (e.sni ? `${e.address}/${e.sni}` : e.address);
}
