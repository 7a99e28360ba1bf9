import * as z from 'zod';

/**
 * `deploy: [{ type: nginx, docker: {container|label} | signal: {pidFile} | command: [...] }]`
 * Exactly one of docker / signal / command says how nginx is reached.
 */
export const nginxDeploySchema = z
  .strictObject({
    type: z.literal('nginx'),
    /** nginx in a container, reached through the Docker API (DOCKER_HOST or /var/run/docker.sock). */
    docker: z
      .union([
        z.strictObject({ container: z.string().min(1) }),
        z.strictObject({
          label: z.string().regex(/^[^=]+=.*$/, 'expected KEY=VALUE, e.g. com.example.role=nginx'),
        }),
      ])
      .optional(),
    /** nginx in the same PID namespace (compose `pid: "service:nginx"`, or the same host): signal its master. */
    signal: z
      .strictObject({
        pidFile: z.string().min(1),
        signal: z.enum(['SIGHUP', 'SIGUSR1', 'SIGUSR2']).default('SIGHUP'),
      })
      .optional(),
    /** Plain host: a reload command run without a shell, e.g. ["systemctl", "reload", "nginx"]. */
    command: z.array(z.string().min(1)).min(1).optional(),
    /** signal/command only: a command that tests the configuration first, e.g. ["nginx", "-t"]. */
    testCommand: z.array(z.string().min(1)).min(1).optional(),
    /** docker only: how to reload — send SIGHUP to the container, or exec `nginx -s reload` in it. */
    reload: z.enum(['signal', 'exec']).default('signal'),
    /** docker: run `nginx -t` inside the container before reloading; signal/command: run testCommand if given. */
    testConfig: z.boolean().default(true),
    /** Upper bound in seconds for each command, exec or Docker API call. */
    timeoutSeconds: z.number().positive().max(600).default(30),
    verify: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** host:port to connect to; default 127.0.0.1:443 (docker mode: the container's own address, port 443). */
        address: z
          .string()
          .regex(
            /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):\d{1,5}$/,
            'expected host:port, e.g. 127.0.0.1:443, nginx:443 or [::1]:443',
          )
          .optional(),
        /** How long to keep retrying until the new serial is served. */
        timeoutSeconds: z.number().positive().max(300).default(10),
        /**
         * How long every name must keep answering the new serial before it counts as served: right after a
         * reload, old nginx workers still take connections for a moment. At most half of timeoutSeconds.
         */
        settleSeconds: z.number().min(0).max(60).default(1),
      })
      .default({ enabled: true, timeoutSeconds: 10, settleSeconds: 1 }),
  })
  .superRefine((v, ctx) => {
    const modes = (['docker', 'signal', 'command'] as const).filter((k) => v[k] !== undefined);
    if (modes.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message:
          modes.length === 0
            ? 'say how to reach nginx: set one of docker: {container: NAME} | docker: {label: KEY=VALUE} | signal: {pidFile: PATH} | command: [...]'
            : `set only one of docker, signal, command (found ${modes.join(' and ')})`,
      });
    }
    if (v.testCommand && v.docker) {
      ctx.addIssue({
        code: 'custom',
        path: ['testCommand'],
        message: 'docker mode always runs `nginx -t` in the container; remove testCommand',
      });
    }
  });
export type NginxDeployConfig = z.infer<typeof nginxDeploySchema>;
export type NginxDeployInput = z.input<typeof nginxDeploySchema>;
