import { describe, expect, it } from "vitest";
import { ROLES, type Role, roleAllows } from "../src/index.ts";

// Written out by hand, never computed from `roleAllows`: a row is the token's role, a column the role
// a route needs. admin ⊃ operator ⊃ viewer; an agent token reaches only agent routes and only an
// agent token reaches them.
const EXPECTED: Record<Role, Record<Role, boolean>> = {
  admin: { admin: true, operator: true, viewer: true, agent: false },
  operator: { admin: false, operator: true, viewer: true, agent: false },
  viewer: { admin: false, operator: false, viewer: true, agent: false },
  agent: { admin: false, operator: false, viewer: false, agent: true },
};

describe("roleAllows", () => {
  it("answers the written-out 4×4 table of token role × needed role", () => {
    const got = Object.fromEntries(
      ROLES.map((have) => [have, Object.fromEntries(ROLES.map((need) => [need, roleAllows(have, need)]))]),
    );
    expect(got).toEqual(EXPECTED);
  });

  it("knows exactly the four roles the table covers", () => {
    expect([...ROLES].sort()).toEqual(["admin", "agent", "operator", "viewer"]);
  });
});
