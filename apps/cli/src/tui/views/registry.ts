import { AgentsView } from "./agents.ts";
import { AuditView } from "./audit.ts";
import { FleetView } from "./fleet.ts";
import { JobView } from "./job.ts";
import { JobLogView } from "./joblog.ts";
import { JobsView } from "./jobs.ts";
import { OverviewView } from "./overview.ts";
import type { View, ViewContext, ViewName } from "./view.ts";

/** Makes a view by name (`log` and `job` need the job's id). */
export function makeView(name: ViewName, ctx: ViewContext, jobId?: string): View {
  switch (name) {
    case "overview":
      return new OverviewView(ctx);
    case "agents":
      return new AgentsView(ctx);
    case "jobs":
      return new JobsView(ctx);
    case "fleet":
      return new FleetView(ctx);
    case "audit":
      return new AuditView(ctx);
    case "log":
      return new JobLogView(ctx, jobId ?? "");
    case "job":
      return new JobView(ctx, jobId ?? "");
  }
}
