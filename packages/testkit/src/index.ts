export { createTestDatabase, type TestDatabase } from "./databases.ts";
export { freePort } from "./ports.ts";
export {
  type PostgresServer,
  privatePostgresGate,
  type RedisServer,
  redisServerGate,
  startPostgresServer,
  startRedisServer,
} from "./servers.ts";
export {
  allOf,
  gate,
  inCi,
  pgGate,
  reachable,
  redisGate,
  type ServiceGate,
  TEST_PG_ADMIN_URL,
  TEST_REDIS_URL,
} from "./services.ts";
export { describeWith } from "./suites.ts";
export { waitFor } from "./wait.ts";
