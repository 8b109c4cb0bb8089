#!/usr/bin/env node
// Placeholder for root scripts whose issue has not landed yet; says so and fails, so nobody mistakes it for success.
const [name, issue] = process.argv.slice(2);
console.error(`skiff: \`pnpm ${name}\` is not yet available (tracked in issue ${issue}).`);
process.exit(2);
