"""The fault suite (`make faults`): errorsink's real processes under SIGKILL, outages and
hostile input, each scenario reporting items pushed, stored, dead-lettered, lost and
duplicated. It runs on its own embedded PostgreSQL and Redis (`.errorsink/faults`), since it
stops and kills them."""
