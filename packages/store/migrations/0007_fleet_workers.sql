-- How many workers the leading controller's scaler runs, as it last saw them (null until a
-- controller has said). The fleet's "actual" used to be every online agent, so a worker started by
-- hand next to the fleet made the fleet look over its size ("scaling down") for as long as it ran.
alter table controller_leader add column workers integer;
