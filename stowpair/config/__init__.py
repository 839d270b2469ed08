"""The typed configuration: model, TOML loader, LDIF importer, schedules."""
