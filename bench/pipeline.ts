import { type ApiUnderTest, registerAgents } from "./lib.ts";
import { followSse, summarizeLatencies } from "./stream.ts";

/** Submit → the job's `running` state event, with a real worker running `true` under bwrap. */
export async function firstStepLatency(api: ApiUnderTest, queue: string, samples: number) {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const controller = new AbortController();
    let jobId = "";
    let t0 = 0;
    let resolveRunning: (t: number) => void = () => {};
    const running = new Promise<number>((r) => {
      resolveRunning = r;
    });
    const follower = followSse(
      `${api.url}/v1/events?topics=jobs`,
      api.admin,
      (e) => {
        if (e.event !== "job.state") return undefined;
        const p = JSON.parse(e.data);
        if (p.jobId === jobId && p.state === "running") {
          resolveRunning(performance.now());
          return true;
        }
        return undefined;
      },
      controller.signal,
    );
    await new Promise((r) => setTimeout(r, 50)); // the stream is open before the submit
    t0 = performance.now();
    jobId = (
      await api.client.call("POST", "/v1/jobs", {
        name: `first-${i}`,
        queue,
        steps: [{ name: "t", run: "true" }],
      })
    ).id;
    const t1 = await Promise.race([
      running,
      new Promise<number>((_, rej) => setTimeout(() => rej(new Error("no running event in 30 s")), 30_000)),
    ]);
    times.push(t1 - t0);
    controller.abort();
    await follower.catch(() => {});
  }
  return summarizeLatencies(times);
}

/** One job prints 20,000 timestamped lines a second; a live follower measures line → SSE delay. */
export async function logFollowLatency(api: ApiUnderTest, queue: string, seconds: number) {
  const script =
    `const s=Date.now();let n=0;const t=setInterval(()=>{let b='';for(let i=0;i<200;i++)b+='L '+Date.now()+' '+(n++)+'\\n';` +
    `process.stdout.write(b);if(Date.now()-s>${seconds * 1000})clearInterval(t)},10)`;
  const job = await api.client.call("POST", "/v1/jobs", {
    name: "log-flood",
    queue,
    steps: [{ name: "flood", run: `node -e "${script}"` }],
  });
  const latencies: number[] = [];
  const controller = new AbortController();
  await followSse(
    `${api.url}/v1/jobs/${job.id}/logs/stream`,
    api.admin,
    (e) => {
      if (e.event === "end") return true;
      if (e.event !== "line") return undefined;
      const m = /^L (\d+) /.exec(JSON.parse(e.data).text);
      if (m) latencies.push(Date.now() - Number(m[1]));
      return undefined;
    },
    controller.signal,
  );
  return summarizeLatencies(latencies);
}

export { registerAgents };
