import { describe, expect, it } from "vitest";
import { assemble, seccompFilter, syscallTable } from "../src/sandbox/seccomp.ts";

// The filter is run here by a small classic-BPF interpreter, so that every rule is checked for
// both architectures without a kernel of each. The real kernel loads it in hostile-bwrap.test.ts.

const AUDIT = { x64: 0xc000003e, arm64: 0xc00000b7, i386: 0x40000003 };
const CLONE_NEWUSER = 0x10000000;
const CLONE_NEWNS = 0x00020000;

type Verdict = "allow" | "kill" | { errno: number };

/** Runs the filter on one system call (struct seccomp_data: nr, arch, ip, args). */
function run(filter: Buffer, arch: number, nr: number, arg0 = 0): Verdict {
  const data = Buffer.alloc(64);
  data.writeUInt32LE(nr >>> 0, 0);
  data.writeUInt32LE(arch >>> 0, 4);
  data.writeUInt32LE(arg0 >>> 0, 16);
  let acc = 0;
  let pc = 0;
  for (let steps = 0; steps < 1_000; steps++) {
    expect(pc * 8, "the program runs off its end").toBeLessThan(filter.length);
    const op = filter.readUInt16LE(pc * 8);
    const jt = filter.readUInt8(pc * 8 + 2);
    const jf = filter.readUInt8(pc * 8 + 3);
    const k = filter.readUInt32LE(pc * 8 + 4);
    switch (op) {
      case 0x20: // BPF_LD | BPF_W | BPF_ABS
        acc = data.readUInt32LE(k);
        pc++;
        break;
      case 0x15: // BPF_JMP | BPF_JEQ | BPF_K
        pc += 1 + (acc === k ? jt : jf);
        break;
      case 0x35: // BPF_JMP | BPF_JGE | BPF_K
        pc += 1 + (acc >= k ? jt : jf);
        break;
      case 0x45: // BPF_JMP | BPF_JSET | BPF_K
        pc += 1 + ((acc & k) !== 0 ? jt : jf);
        break;
      case 0x06: {
        // BPF_RET | BPF_K
        if (k === 0x7fff0000) return "allow";
        if (k === 0x80000000) return "kill";
        expect(k & 0xffff0000, `unexpected return ${k.toString(16)}`).toBe(0x00050000);
        return { errno: k & 0xffff };
      }
      default:
        throw new Error(`unexpected BPF op 0x${op.toString(16)} at ${pc}`);
    }
  }
  throw new Error("the filter loops");
}

const EPERM = { errno: 1 };
const ENOSYS = { errno: 38 };

describe("seccomp filter", () => {
  it("x86_64: refuses mount, keyctl, bpf, setns, io_uring and the x32 ABI with EPERM; allows read, write, execve", () => {
    const f = seccompFilter("x64");
    expect(f).not.toBeNull();
    if (!f) return;
    expect(f.length % 8).toBe(0);
    // mount, umount2, keyctl, bpf, setns, perf_event_open, io_uring_setup, init_module, kexec_load
    for (const nr of [165, 166, 250, 321, 308, 298, 425, 175, 246])
      expect(run(f, AUDIT.x64, nr), `nr ${nr}`).toEqual(EPERM);
    for (const nr of [0, 1, 59, 2, 257, 57, 61]) expect(run(f, AUDIT.x64, nr), `nr ${nr}`).toBe("allow");
    expect(run(f, AUDIT.x64, 0x40000000 + 1)).toEqual(EPERM); // x32 write
    expect(run(f, AUDIT.x64, 0x40000000)).toEqual(EPERM);
    expect(run(f, AUDIT.x64, 0x3fffffff)).toBe("allow");
  });

  it("x86_64: new user namespaces are refused, other clone and unshare flags pass, clone3 says ENOSYS", () => {
    const f = seccompFilter("x64");
    if (!f) throw new Error("no filter");
    expect(run(f, AUDIT.x64, 56, CLONE_NEWUSER)).toEqual(EPERM); // clone
    expect(run(f, AUDIT.x64, 56, CLONE_NEWUSER | CLONE_NEWNS)).toEqual(EPERM);
    expect(run(f, AUDIT.x64, 272, CLONE_NEWUSER)).toEqual(EPERM); // unshare
    expect(run(f, AUDIT.x64, 56, 0x01200011)).toBe("allow"); // what fork() passes
    expect(run(f, AUDIT.x64, 272, CLONE_NEWNS)).toBe("allow");
    expect(run(f, AUDIT.x64, 435)).toEqual(ENOSYS); // clone3
  });

  it("vsock sockets are refused on both architectures; other families (unix, inet, inet6, netlink) pass", () => {
    const AF_VSOCK = 40;
    for (const [arch, audit, socket] of [
      ["x64", AUDIT.x64, 41],
      ["arm64", AUDIT.arm64, 198],
    ] as const) {
      const f = seccompFilter(arch);
      if (!f) throw new Error("no filter");
      expect(run(f, audit, socket, AF_VSOCK), arch).toEqual(EPERM);
      for (const family of [1, 2, 10, 16])
        expect(run(f, audit, socket, family), `${arch} ${family}`).toBe("allow");
      // Another call with 40 as its first argument is not a socket.
      expect(run(f, audit, arch === "x64" ? 0 : 63, AF_VSOCK), arch).toBe("allow");
    }
  });

  it("the assembler resolves jumps down to labels, and refuses a missing, backward or too long one", () => {
    const ok = assemble([
      { op: 0x20, k: 4 },
      { op: 0x15, k: 7, jt: "yes", jf: "no" },
      { op: 0x06, k: 1, label: "no" },
      { op: 0x06, k: 0xffffffff, label: "yes" },
    ]);
    expect([...ok]).toEqual([
      0x20,
      0,
      0,
      0,
      4,
      0,
      0,
      0, // ld [4]
      0x15,
      0,
      1,
      0,
      7,
      0,
      0,
      0, // jeq #7, jt +1 (yes), jf +0 (no)
      0x06,
      0,
      0,
      0,
      1,
      0,
      0,
      0, // ret #1
      0x06,
      0,
      0,
      0,
      0xff,
      0xff,
      0xff,
      0xff, // ret #0xffffffff
    ]);
    expect(() => assemble([{ op: 0x15, k: 0, jt: "nowhere" }])).toThrow("seccomp: bad jump to nowhere");
    expect(() =>
      assemble([
        { op: 0x06, k: 0, label: "up" },
        { op: 0x15, k: 0, jt: "up" },
      ]),
    ).toThrow("seccomp: bad jump to up");
    expect(() => assemble([{ op: 0x15, k: 0, jt: "self", label: "self" }])).toThrow(
      "seccomp: bad jump to self",
    );
    const far = (gap: number) => [
      { op: 0x15, k: 0, jt: "end" },
      ...Array.from({ length: gap }, () => ({ op: 0x20, k: 0 })),
      { op: 0x06, k: 0, label: "end" },
    ];
    expect(assemble(far(255)).readUInt8(2)).toBe(255);
    expect(() => assemble(far(256))).toThrow("seccomp: jump too long");
  });

  it("another ABI on x86_64 (i386) kills the process; so does the x86_64 filter on arm64 calls", () => {
    const f = seccompFilter("x64");
    if (!f) throw new Error("no filter");
    expect(run(f, AUDIT.i386, 0)).toBe("kill");
    expect(run(f, AUDIT.arm64, 63)).toBe("kill");
  });

  it("arm64: its own numbers are refused (mount 40, keyctl 219, bpf 280, unshare with CLONE_NEWUSER), its reads allowed", () => {
    const f = seccompFilter("arm64");
    if (!f) throw new Error("no filter");
    for (const nr of [40, 219, 280, 268, 241]) expect(run(f, AUDIT.arm64, nr), `nr ${nr}`).toEqual(EPERM);
    for (const nr of [63, 64, 221, 56]) expect(run(f, AUDIT.arm64, nr), `nr ${nr}`).toBe("allow");
    expect(run(f, AUDIT.arm64, 97, CLONE_NEWUSER)).toEqual(EPERM);
    expect(run(f, AUDIT.arm64, 220, CLONE_NEWUSER)).toEqual(EPERM);
    expect(run(f, AUDIT.arm64, 97, CLONE_NEWNS)).toBe("allow");
    expect(run(f, AUDIT.arm64, 435)).toEqual(ENOSYS);
    // arm64 has no x32 ABI: a high number is simply unknown to the table, not refused by a range.
    expect(run(f, AUDIT.arm64, 0x40000000)).toBe("allow");
    expect(run(f, AUDIT.x64, 63)).toBe("kill");
  });

  it("an architecture without a table gets no filter (the driver then says so), and the tables list each call once", () => {
    expect(seccompFilter("ia32")).toBeNull();
    expect(syscallTable("riscv64")).toBeNull();
    const x64 = syscallTable("x64");
    const arm = syscallTable("arm64");
    expect(x64?.audit).toBe(AUDIT.x64);
    expect(arm?.audit).toBe(AUDIT.arm64);
    expect(x64?.numbers).toContain(165);
    expect(arm?.numbers).toContain(40);
    expect(new Set(x64?.numbers).size).toBe(x64?.numbers.length);
    expect(x64?.numbers.length).toBeGreaterThan(40);
  });
});
