import { z } from 'zod';

/** `deploy: [{ type: nginx, docker: {container|label} | signal: {pidFile} | command: [...] }]` */
export const nginxDeploySchema = z.strictObject({
  type: z.literal('nginx'),
  docker: z
    .union([z.strictObject({ container: z.string().min(1) }), z.strictObject({ label: z.string().regex(/^[^=]+=.*$/, 'expected KEY=VALUE') })])
    .optional(),
  signal: z.strictObject({ pidFile: z.string().min(1), signal: z.string().default('SIGHUP') }).optional(),
  command: z.array(z.string().min(1)).min(1).optional(),
  /** docker only: how to reload — send SIGHUP to the container, or exec `nginx -s reload` in it. */
  reload: z.enum(['signal', 'exec']).default('signal'),
  /** Run `nginx -t` before reloading (docker: inside the container). */
  testConfig: z.boolean().default(true),
  verify: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** host:port to connect to; default 127.0.0.1:443. */
      address: z.string().min(1).optional(),
      timeoutSeconds: z.number().positive().default(10),
    })
    .default({ enabled: true, timeoutSeconds: 10 }),
});
export type NginxDeployConfig = z.infer<typeof nginxDeploySchema>;
