// Turns a V8 `.cpuprofile` (from `node --cpu-prof`) into a flame graph SVG and a short summary:
// where the samples went by owner (Skiff's code, each dependency, Node itself, GC, idle) and the
// functions with the most self time. Used by `bench/profile.ts`; no dependencies of its own.

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/**
 * Keeps only the samples taken `skipMs` or more after the profile started, so the process's own
 * startup (module loading, migrations) does not drown the workload in a short run.
 */
export function trimProfile(profile: CpuProfile, skipMs: number): CpuProfile {
  const { samples, timeDeltas } = profile;
  if (!samples || !timeDeltas) return profile;
  const hits = new Map<number, number>();
  let t = 0;
  for (let i = 0; i < samples.length; i++) {
    t += timeDeltas[i] ?? 0;
    const id = samples[i];
    if (t / 1000 >= skipMs && id !== undefined) hits.set(id, (hits.get(id) ?? 0) + 1);
  }
  return {
    ...profile,
    nodes: profile.nodes.map((n) => ({ ...n, hitCount: hits.get(n.id) ?? 0 })),
  };
}

interface Frame {
  name: string;
  owner: string;
  self: number;
  total: number;
  children: Map<string, Frame>;
}

/** Who a frame belongs to: `skiff/<dir>`, a dependency's package name, `node`, or a V8 pseudo-frame. */
export function ownerOf(frame: CallFrame): string {
  const url = frame.url;
  if (!url) {
    if (frame.functionName.startsWith("(")) return frame.functionName;
    return "native";
  }
  if (url.startsWith("node:")) return "node";
  const pkg = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg?.[1] && !pkg[1].startsWith("@skiff/")) return pkg[1];
  const own = /\/(apps|packages)\/([^/]+)\//.exec(url);
  if (own) return `skiff/${own[1]}/${own[2]}`;
  return "other";
}

function label(frame: CallFrame): string {
  const file = frame.url.split("/").slice(-2).join("/");
  const fn = frame.functionName || "(anonymous)";
  return file ? `${fn} ${file}:${frame.lineNumber + 1}` : fn;
}

/** Folds the profile's call tree by label (so recursion through the same callee merges). */
function fold(profile: CpuProfile): Frame {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const rootNode = profile.nodes[0];
  const root: Frame = { name: "all", owner: "all", self: 0, total: 0, children: new Map() };
  if (!rootNode) return root;
  const walk = (node: ProfileNode, into: Frame) => {
    const hits = node.hitCount ?? 0;
    into.self += hits;
    for (const id of node.children ?? []) {
      const child = byId.get(id);
      if (!child) continue;
      const key = label(child.callFrame);
      let frame = into.children.get(key);
      if (!frame) {
        frame = { name: key, owner: ownerOf(child.callFrame), self: 0, total: 0, children: new Map() };
        into.children.set(key, frame);
      }
      walk(child, frame);
    }
  };
  walk(rootNode, root);
  const total = (f: Frame): number => {
    f.total = f.self;
    for (const c of f.children.values()) f.total += total(c);
    return f.total;
  };
  total(root);
  return root;
}

export interface ProfileSummary {
  samples: number;
  byOwner: { owner: string; share: number }[];
  topSelf: { name: string; owner: string; share: number }[];
}

export function summarise(profile: CpuProfile, top = 15): ProfileSummary {
  const byOwner = new Map<string, number>();
  const bySelf = new Map<string, { owner: string; hits: number }>();
  let samples = 0;
  for (const n of profile.nodes) {
    const hits = n.hitCount ?? 0;
    if (hits === 0) continue;
    samples += hits;
    const owner = ownerOf(n.callFrame);
    byOwner.set(owner, (byOwner.get(owner) ?? 0) + hits);
    const key = label(n.callFrame);
    const e = bySelf.get(key) ?? { owner, hits: 0 };
    e.hits += hits;
    bySelf.set(key, e);
  }
  const share = (h: number) => (samples === 0 ? 0 : h / samples);
  return {
    samples,
    byOwner: [...byOwner].map(([owner, h]) => ({ owner, share: share(h) })).sort((a, b) => b.share - a.share),
    topSelf: [...bySelf]
      .map(([name, e]) => ({ name, owner: e.owner, share: share(e.hits) }))
      .sort((a, b) => b.share - a.share)
      .slice(0, top),
  };
}

const escapeXml = (s: string) =>
  s.replace(
    /[<>&"']/g,
    (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c] ?? c,
  );

function colour(owner: string): string {
  if (owner.startsWith("skiff/")) return "#e8843a"; // ours: orange, what we can change directly
  if (owner === "node") return "#7fb3d5";
  if (owner.startsWith("(")) return "#c8c8c8"; // idle, program, garbage collector
  let h = 0;
  for (const ch of owner) h = (h * 31 + ch.charCodeAt(0)) % 360;
  return `hsl(${40 + (h % 60)}, 70%, 62%)`; // dependencies: yellows and greens
}

/**
 * A flame graph (root at the bottom) as a standalone SVG: frame width is its share of all samples;
 * hover a frame for its name, owner and share. Frames narrower than `minShare` are left out.
 */
export function flameSvg(profile: CpuProfile, title: string, minShare = 0.002): string {
  const root = fold(profile);
  const width = 1200;
  const rowH = 16;
  const rects: string[] = [];
  let maxDepth = 0;
  const place = (f: Frame, x: number, depth: number) => {
    if (root.total === 0) return;
    const w = (f.total / root.total) * width;
    if (f.total / root.total < minShare) return;
    maxDepth = Math.max(maxDepth, depth);
    rects.push(
      `<g><title>${escapeXml(`${f.name} [${f.owner}] ${((100 * f.total) / root.total).toFixed(1)}%`)}</title>` +
        `<rect x="${x.toFixed(1)}" y="{Y${depth}}" width="${Math.max(0.5, w - 0.5).toFixed(1)}" height="${rowH - 1}" fill="${colour(f.owner)}"/>` +
        (w > 40
          ? `<text x="${(x + 3).toFixed(1)}" y="{T${depth}}">${escapeXml(f.name.slice(0, Math.floor(w / 6.5)))}</text>`
          : "") +
        "</g>",
    );
    let cx = x;
    for (const c of [...f.children.values()].sort((a, b) => b.total - a.total)) {
      place(c, cx, depth + 1);
      cx += (c.total / root.total) * width;
    }
  };
  place(root, 0, 0);
  const top = 40;
  const height = top + (maxDepth + 1) * rowH + 10;
  const y = (d: number) => top + (maxDepth - d) * rowH;
  const body = rects
    .join("\n")
    .replace(/\{Y(\d+)\}/g, (_, d) => String(y(Number(d))))
    .replace(/\{T(\d+)\}/g, (_, d) => String(y(Number(d)) + 11));
  return `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="monospace" font-size="10">
<title>${escapeXml(title)}</title>
<text x="4" y="16" font-size="13">${escapeXml(title)}</text>
<text x="4" y="32" fill="#555">orange: Skiff · blue: Node · grey: idle/GC/VM · yellow-green: dependencies · hover for details</text>
${body}
</svg>
`;
}
