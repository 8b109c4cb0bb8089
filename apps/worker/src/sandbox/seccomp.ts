import { arch } from "node:os";

/**
 * The seccomp filter of a bwrap step, as the classic BPF program bubblewrap's `--seccomp FD` loads.
 * Like Docker's default profile in effect, it refuses with EPERM the system calls a build or test
 * never needs and that widen the kernel's attack surface: mounting, kernel modules and kexec, BPF,
 * perf, the keyring, namespace entry, handle-based file access, userfaultfd, io_uring, clock and
 * swap changes. Calls of a foreign ABI (i386 or x32 on x86_64) are refused outright.
 *
 * Sockets of the vsock family are refused: they reach the hypervisor whatever the step's network.
 *
 * It also refuses new user namespaces (`unshare` and `clone` with CLONE_NEWUSER; `clone3`, whose
 * flags a filter cannot read, answers ENOSYS so that libc falls back to `clone`), as Docker's
 * profile does. bubblewrap's own `--disable-userns` does this by nesting a second user namespace,
 * and a nested namespace cannot be handed to slirp4netns reliably (it owns no network namespace).
 */

const BLOCKED = [
  "mount",
  "umount2",
  "pivot_root",
  "fsopen",
  "fsconfig",
  "fsmount",
  "fspick",
  "open_tree",
  "move_mount",
  "mount_setattr",
  "swapon",
  "swapoff",
  "reboot",
  "kexec_load",
  "kexec_file_load",
  "init_module",
  "finit_module",
  "delete_module",
  "bpf",
  "perf_event_open",
  "keyctl",
  "add_key",
  "request_key",
  "setns",
  "open_by_handle_at",
  "name_to_handle_at",
  "userfaultfd",
  "acct",
  "quotactl",
  "syslog",
  "settimeofday",
  "clock_settime",
  "clock_adjtime",
  "adjtimex",
  "lookup_dcookie",
  "vhangup",
  "nfsservctl",
  "io_uring_setup",
  "io_uring_enter",
  "io_uring_register",
  // x86 only
  "iopl",
  "ioperm",
  "_sysctl",
  "uselib",
  "create_module",
  "get_kernel_syms",
  "query_module",
] as const;
export type BlockedSyscall = (typeof BLOCKED)[number];

// From the kernel's unistd tables (asm/unistd_64.h and asm-generic/unistd.h).
const X86_64: Partial<Record<BlockedSyscall, number>> = {
  mount: 165,
  umount2: 166,
  pivot_root: 155,
  fsopen: 430,
  fsconfig: 431,
  fsmount: 432,
  fspick: 433,
  open_tree: 428,
  move_mount: 429,
  mount_setattr: 442,
  swapon: 167,
  swapoff: 168,
  reboot: 169,
  kexec_load: 246,
  kexec_file_load: 320,
  init_module: 175,
  finit_module: 313,
  delete_module: 176,
  bpf: 321,
  perf_event_open: 298,
  keyctl: 250,
  add_key: 248,
  request_key: 249,
  setns: 308,
  open_by_handle_at: 304,
  name_to_handle_at: 303,
  userfaultfd: 323,
  acct: 163,
  quotactl: 179,
  syslog: 103,
  settimeofday: 164,
  clock_settime: 227,
  clock_adjtime: 305,
  adjtimex: 159,
  lookup_dcookie: 212,
  vhangup: 153,
  nfsservctl: 180,
  io_uring_setup: 425,
  io_uring_enter: 426,
  io_uring_register: 427,
  iopl: 172,
  ioperm: 173,
  _sysctl: 156,
  uselib: 134,
  create_module: 174,
  get_kernel_syms: 177,
  query_module: 178,
};
const AARCH64: Partial<Record<BlockedSyscall, number>> = {
  mount: 40,
  umount2: 39,
  pivot_root: 41,
  fsopen: 430,
  fsconfig: 431,
  fsmount: 432,
  fspick: 433,
  open_tree: 428,
  move_mount: 429,
  mount_setattr: 442,
  swapon: 224,
  swapoff: 225,
  reboot: 142,
  kexec_load: 104,
  kexec_file_load: 294,
  init_module: 105,
  finit_module: 273,
  delete_module: 106,
  bpf: 280,
  perf_event_open: 241,
  keyctl: 219,
  add_key: 217,
  request_key: 218,
  setns: 268,
  open_by_handle_at: 265,
  name_to_handle_at: 264,
  userfaultfd: 282,
  acct: 89,
  quotactl: 60,
  syslog: 116,
  settimeofday: 170,
  clock_settime: 112,
  clock_adjtime: 266,
  adjtimex: 171,
  lookup_dcookie: 18,
  vhangup: 58,
  nfsservctl: 42,
  io_uring_setup: 425,
  io_uring_enter: 426,
  io_uring_register: 427,
};

/** Calls whose flags are checked for CLONE_NEWUSER, and clone3. */
const NAMESPACE_CALLS = {
  x64: { clone: 56, unshare: 272, clone3: 435 },
  arm64: { clone: 220, unshare: 97, clone3: 435 },
} as const;
const CLONE_NEWUSER = 0x10000000;
/** socket(2), whose first argument (the address family) is checked for AF_VSOCK. */
const SOCKET_CALL = { x64: 41, arm64: 198 } as const;
/**
 * vsock reaches the hypervisor (and, in a VM, its other guests) without any network namespace:
 * a `network: off` step could still talk out through it. Docker's default profile refuses it too.
 */
const AF_VSOCK = 40;

const AUDIT_ARCH = { x64: 0xc000003e, arm64: 0xc00000b7 } as const;
const X32_SYSCALL_BIT = 0x40000000;

// Classic BPF opcodes and seccomp return values (linux/filter.h, linux/seccomp.h).
const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JGE_K = 0x35;
const JSET_K = 0x45;
const RET_K = 0x06;
const RET_ALLOW = 0x7fff0000;
const RET_ERRNO = 0x00050000;
const RET_KILL_PROCESS = 0x80000000;
const EPERM = 1;
const ENOSYS = 38;
/** Offsets in struct seccomp_data. */
const NR = 0;
const ARCH = 4;
/** Low 32 bits of the first argument (little-endian). */
const ARG0_LOW = 16;

/** The syscall table of this machine, or null where Skiff has none (the step then runs without). */
export function syscallTable(machine = arch()): { audit: number; numbers: number[] } | null {
  const table = machine === "x64" ? X86_64 : machine === "arm64" ? AARCH64 : null;
  if (!table) return null;
  return { audit: AUDIT_ARCH[machine as "x64" | "arm64"], numbers: Object.values(table) as number[] };
}

type Target = "allowFlags" | "allowFamily" | "eperm" | "enosys" | "family" | "flags" | "kill";
export type Step = { op: number; k: number; jt?: string; jf?: string; label?: string };

/** The compiled filter (struct sock_filter[], little-endian), or null on an unsupported machine. */
export function seccompFilter(machine = arch()): Buffer | null {
  const table = syscallTable(machine);
  if (!table) return null;
  const ns = NAMESPACE_CALLS[machine as "x64" | "arm64"];
  // A tiny assembler: jumps name a labelled instruction further down.
  const prog: (Step & { jt?: Target; jf?: Target; label?: Target })[] = [
    { op: LD_W_ABS, k: ARCH },
    // A foreign ABI has other syscall numbers: refuse the whole process rather than guess.
    { op: JEQ_K, k: table.audit, jf: "kill" },
    { op: LD_W_ABS, k: NR },
    // x32 calls set a high bit in the number; none are needed.
    ...(machine === "x64" ? [{ op: JGE_K, k: X32_SYSCALL_BIT, jt: "eperm" as Target }] : []),
    ...table.numbers.map((nr) => ({ op: JEQ_K, k: nr, jt: "eperm" as Target })),
    { op: JEQ_K, k: ns.clone, jt: "flags" },
    { op: JEQ_K, k: ns.unshare, jt: "flags" },
    { op: JEQ_K, k: ns.clone3, jt: "enosys" },
    { op: JEQ_K, k: SOCKET_CALL[machine as "x64" | "arm64"], jt: "family" },
    // Every other call: reached by falling through, so it needs no label.
    { op: RET_K, k: RET_ALLOW },
    { op: LD_W_ABS, k: ARG0_LOW, label: "flags" },
    { op: JSET_K, k: CLONE_NEWUSER, jt: "eperm", jf: "allowFlags" },
    { op: RET_K, k: RET_ALLOW, label: "allowFlags" },
    { op: LD_W_ABS, k: ARG0_LOW, label: "family" },
    { op: JEQ_K, k: AF_VSOCK, jt: "eperm", jf: "allowFamily" },
    { op: RET_K, k: RET_ALLOW, label: "allowFamily" },
    { op: RET_K, k: RET_ERRNO | ENOSYS, label: "enosys" },
    { op: RET_K, k: RET_ERRNO | EPERM, label: "eperm" },
    { op: RET_K, k: RET_KILL_PROCESS, label: "kill" },
  ];
  return assemble(prog);
}

/**
 * A tiny assembler: `prog` as struct sock_filter[] (little-endian), each jump resolved to the
 * labelled instruction it names further down. A jump to a label that is missing or not below it,
 * or more than 255 instructions away (classic BPF's limit), is a mistake in the program: it throws.
 */
export function assemble(prog: Step[]): Buffer {
  const at = new Map<string, number>();
  prog.forEach((step, i) => {
    // Stryker disable next-line ConditionalExpression: an undefined key is never looked up (no jump is checked without a target)
    if (step.label) at.set(step.label, i);
  });
  const offset = (from: number, to: string | undefined): number => {
    if (to === undefined) return 0;
    const target = at.get(to);
    if (target === undefined || target <= from) throw new Error(`seccomp: bad jump to ${to}`);
    const off = target - from - 1;
    if (off > 255) throw new Error("seccomp: jump too long");
    return off;
  };
  const buf = Buffer.alloc(prog.length * 8);
  prog.forEach((step, i) => {
    buf.writeUInt16LE(step.op, i * 8);
    buf.writeUInt8(offset(i, step.jt), i * 8 + 2);
    buf.writeUInt8(offset(i, step.jf), i * 8 + 3);
    buf.writeUInt32LE(step.k >>> 0, i * 8 + 4);
  });
  return buf;
}
