import { networkInterfaces } from "node:os";
import { describe, expect, it } from "vitest";
import { BLOCKED_NETWORKS, describeEgress, hostAddresses, routeBatch } from "../src/sandbox/egress.ts";

// The end-to-end attacks (a step trying the host's services and private ranges) are in
// hostile-bwrap.test.ts; these pin down the route table a `network: on` sandbox gets.
describe("egress routes", () => {
  it("every host IPv4 address is listed once as a /32, and no IPv6 address is", () => {
    const expected = new Set<string>();
    for (const list of Object.values(networkInterfaces()))
      for (const a of list ?? []) if (a.family === "IPv4") expected.add(`${a.address}/32`);
    const got = hostAddresses();
    expect(got.length).toBeGreaterThan(0);
    expect(got).toContain("127.0.0.1/32");
    expect(new Set(got)).toEqual(expected);
    expect(got.length).toBe(expected.size);
    expect(got.some((a) => a.includes(":"))).toBe(false);
  });

  it("refuses every blocked range and every host address, one line each, nothing routed", () => {
    const batch = routeBatch([], ["198.51.100.7/32"]);
    expect(batch.endsWith("\n")).toBe(true);
    const lines = batch.trimEnd().split("\n");
    expect(lines).toEqual([...BLOCKED_NETWORKS, "198.51.100.7/32"].map((n) => `route add prohibit ${n}`));
    for (const n of [
      "127.0.0.0/8",
      "10.0.0.0/8",
      "172.16.0.0/12",
      "192.168.0.0/16",
      "169.254.0.0/16",
      "10.0.2.2/32",
    ])
      expect(lines).toContain(`route add prohibit ${n}`);
  });

  it("an allowed network gets a route through the gateway and loses its refusal; the rest stay refused", () => {
    const lines = routeBatch(["10.0.0.0/8", "198.51.100.7/32"], ["198.51.100.7/32", "203.0.113.9/32"])
      .trimEnd()
      .split("\n");
    expect(lines[0]).toBe("route add 10.0.0.0/8 via 10.0.2.2 dev tap0 onlink");
    expect(lines[1]).toBe("route add 198.51.100.7/32 via 10.0.2.2 dev tap0 onlink");
    expect(lines).not.toContain("route add prohibit 10.0.0.0/8");
    expect(lines).not.toContain("route add prohibit 198.51.100.7/32");
    expect(lines).toContain("route add prohibit 203.0.113.9/32");
    expect(lines).toContain("route add prohibit 127.0.0.0/8");
    expect(lines.length).toBe(2 + BLOCKED_NETWORKS.length - 1 + 1);
  });

  it("the step's log line names the rule and any allowed networks", () => {
    expect(describeEgress([])).toMatch(/public addresses only, no route to the host/);
    expect(describeEgress([])).not.toMatch(/allowed by the operator/);
    expect(describeEgress(["10.1.0.0/16", "10.2.0.0/16"])).toMatch(
      /allowed by the operator: 10\.1\.0\.0\/16, 10\.2\.0\.0\/16$/,
    );
  });
});
