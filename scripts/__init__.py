"""Operations: `make doctor` (doctor/), backups, the dashboards' queries, the config checks."""
