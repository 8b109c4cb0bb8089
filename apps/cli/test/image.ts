import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import type { ServiceGate } from "@skiff/testkit";

/**
 * The skiff image as the tests build it: from a base imported from this machine's own binaries
 * (nothing can be pulled here), with the contents assembled on the host (`SKIFF_DEPS=context`), and
 * tagged by a hash of its inputs so an unchanged checkout reuses the image it built before.
 */

const exec = promisify(execFile);
const root = new URL("../../../", import.meta.url).pathname;

/** The bases: `node` is node alone (scripts/build-node-image.sh); `local` adds bubblewrap and the
 * compose CLI (scripts/build-local-images.sh), what the worker and controller images need. */
const BASES = {
  node: { image: "skiff-test-node:latest", script: ["scripts/build-node-image.sh"] },
  local: { image: "skiff-local-base:latest", script: ["scripts/build-local-images.sh", "base"] },
} as const;

/** The Docker engine answers `docker info`; says how to start it when not. */
export async function dockerCliGate(): Promise<ServiceGate> {
  try {
    await exec("docker", ["info", "--format", "{{.ServerVersion}}"], { timeout: 10_000 });
    return { available: true, missing: null };
  } catch {
    return {
      available: false,
      missing:
        "the Docker engine does not answer `docker info`; start it with " +
        "`nohup dockerd --bridge=none --iptables=false >/tmp/dockerd.log 2>&1 &`",
    };
  }
}

export async function docker(args: string[], timeout = 60_000): Promise<string> {
  const { stdout } = await exec("docker", args, { timeout, maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

/** Everything the image is made from. */
function inputsHash(base: string): string {
  const hash = createHash("sha256").update(base).update("\0");
  const add = (path: string) => {
    if (statSync(path).isDirectory()) {
      for (const name of readdirSync(path).sort()) {
        if (name !== "node_modules" && name !== "test" && !name.startsWith(".")) add(join(path, name));
      }
      return;
    }
    hash.update(relative(root, path)).update("\0").update(readFileSync(path)).update("\0");
  };
  for (const file of ["Dockerfile", ".dockerignore", "package.json", "pnpm-lock.yaml", "deploy/image"]) {
    add(join(root, file));
  }
  for (const group of ["apps", "packages"]) {
    for (const name of readdirSync(join(root, group)).sort()) {
      add(join(root, group, name, "package.json"));
      add(join(root, group, name, "src"));
    }
  }
  add(join(root, "packages/store/migrations"));
  return hash.digest("hex").slice(0, 16);
}

/** Builds the image on the given base the way the Dockerfile documents, unless built already. */
export async function ensureImage(base: keyof typeof BASES): Promise<string> {
  const { image: baseImage, script } = BASES[base];
  await exec(
    "sh",
    script.map((s, i) => (i === 0 ? join(root, s) : s)),
    { timeout: 300_000 },
  );
  const image = `skiff-image-test:${base}-${inputsHash(await docker(["image", "inspect", "-f", "{{.Id}}", baseImage]))}`;
  if ((await docker(["image", "ls", "-q", image])) !== "") return image;
  // A directory of its own: other test files prepare and build at the same time.
  const buildDir = `deploy/image/.build-test-${base}`;
  await exec(process.execPath, [join(root, "deploy/image/prepare.mjs"), "--offline", buildDir], {
    cwd: root,
    timeout: 170_000,
  });
  await exec(
    "docker",
    [
      "build",
      "-q",
      "--build-arg",
      `BASE_IMAGE=${baseImage}`,
      "--build-arg",
      "SKIFF_DEPS=context",
      "--build-arg",
      `SKIFF_BUILD_DIR=${buildDir}`,
      "--build-arg",
      "SYSTEM_PACKAGES=",
      "--label",
      "skiff.test=image",
      "-t",
      image,
      root,
    ],
    { cwd: root, timeout: 400_000, maxBuffer: 16 * 1024 * 1024 },
  );
  return image;
}
