/**
 * The names of the cluster's secrets and how each is generated, apart from src/inventory/secrets.ts
 * so that the inventory schema can check the names of `secrets:` without loading the secrets code.
 */

/** How a secret is generated and checked (see generateSecretValue and validateSecretValue). */
export type SecretKind = 'password' | 'erlangCookie' | 'fernetKey' | 'hex32';

/** Every secret and how it is generated. The order is the order in the secrets file. */
export const SECRET_KINDS = {
  postgresSuperuser: 'password',
  postgresReplication: 'password',
  postgresRewind: 'password',
  patroniRestApi: 'password',
  airflowDb: 'password',
  rabbitmqAirflow: 'password',
  rabbitmqAdmin: 'password',
  erlangCookie: 'erlangCookie',
  airflowFernetKey: 'fernetKey',
  airflowSecretKey: 'hex32',
  airflowJwtSecret: 'hex32',
  airflowAdmin: 'password',
  haproxyStats: 'password',
  flowerBasicAuth: 'password',
  ftpUser: 'password',
  postgresMonitor: 'password',
  alertmanagerSmtp: 'password',
  alertmanagerWebhook: 'password',
} as const satisfies Record<string, SecretKind>;

/** The name of one secret, e.g. `airflowDb`. */
export type SecretName = keyof typeof SECRET_KINDS;

/** Every secret's name, in the order of {@link SECRET_KINDS}. */
export const SECRET_NAMES = Object.keys(SECRET_KINDS) as SecretName[];
