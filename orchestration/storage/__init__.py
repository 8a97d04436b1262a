"""The storage floor: everything that reads or writes the data root (docs/architecture.md, The
storage floor). Imports only downward: orchestration's config and times, never assets/ or
checks/."""
