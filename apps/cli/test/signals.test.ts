import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const env = fileURLToPath(new URL("../src/env.ts", import.meta.url));

/**
 * A process that stops on signals the way `skiff up`, `skiff worker` and `skiff controller` do,
 * then keeps the event loop busy a while after its stop (as a lingering socket would).
 */
function program(stopMs: number, lingerMs: number): string {
  return `
    import { onShutdownSignals } from ${JSON.stringify(env)};
    const hold = setInterval(() => {}, 1000);
    onShutdownSignals("t", async () => {
      await new Promise((r) => setTimeout(r, ${stopMs}));
      process.stdout.write("stopped\\n");
      setTimeout(() => clearInterval(hold), ${lingerMs});
    });
    process.stdout.write("ready\\n");
  `;
}

function run(source: string) {
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", source], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => {
    out += d;
  });
  child.stderr.on("data", (d) => {
    out += d;
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((r) =>
    child.once("exit", (code, signal) => r({ code, signal })),
  );
  const until = async (text: string) => {
    for (let i = 0; i < 300 && !out.includes(text); i++) await new Promise((r) => setTimeout(r, 50));
    expect(out).toContain(text);
  };
  return { child, exited, until, out: () => out };
}

describe("shutdown signals", { timeout: 60_000 }, () => {
  it("a signal arriving after a clean stop still exits 0, not killed by SIGINT (130)", async () => {
    const p = run(program(10, 2_500));
    await p.until("ready");
    p.child.kill("SIGINT");
    await p.until("stopped");
    await new Promise((r) => setTimeout(r, 1_200)); // past the one-second "same keypress" window
    p.child.kill("SIGINT");
    expect(await p.exited, p.out()).toEqual({ code: 0, signal: null });
  });

  it("a repeat within a second is the same keypress; a later one during the stop forces exit 130", async () => {
    const p = run(program(4_000, 0));
    await p.until("ready");
    p.child.kill("SIGINT");
    await new Promise((r) => setTimeout(r, 200));
    p.child.kill("SIGINT"); // relayed copy of the same Ctrl-C: ignored
    await new Promise((r) => setTimeout(r, 1_300));
    expect(p.out()).not.toContain("exiting now");
    p.child.kill("SIGINT");
    expect(await p.exited, p.out()).toEqual({ code: 130, signal: null });
    expect(p.out()).toContain("second SIGINT, exiting now");
    expect(p.out()).not.toContain("stopped");
  });
});
