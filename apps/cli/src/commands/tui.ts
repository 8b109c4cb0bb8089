import { type Command, Option } from "commander";
import { action } from "../action.ts";
import type { TuiOptions } from "../tui/index.ts";

export function registerTui(program: Command): void {
  program
    .command("tui")
    .description("open the admin console")
    .option("--api-url <url>", "the API's URL (env SKIFF_URL, default http://127.0.0.1:8787)")
    .addOption(new Option("--base-url <url>").hideHelp())
    .option("--token <token>", "an API token (env SKIFF_TOKEN, else $SKIFF_HOME/admin.token)")
    .option("--read-only", "offer no action that changes the server")
    .option("--no-color", "no colours (also with NO_COLOR set)")
    .option(
      "--mouse",
      "click a row to select it, scroll with the wheel (the terminal's own text selection then needs Shift)",
    )
    .action(
      action(async (opts: TuiOptions) => {
        // blessed loads only for the console, not for every other command.
        const { runTui } = await import("../tui/index.ts");
        await runTui(opts);
      }),
    );
}
