// The console started as `skiff tui` starts it, then made to crash with an uncaught exception, to
// show that a crash still gives the terminal back (used by e2e.test.ts).
import { runTui } from "../../src/tui/index.ts";

setTimeout(
  () => {
    throw new Error("deliberate crash for the test");
  },
  Number(process.env.CRASH_AFTER_MS ?? 3000),
);
await runTui({ baseUrl: process.argv[2] });
