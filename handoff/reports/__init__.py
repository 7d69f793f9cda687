"""Reports for managers: metrics computed in SQL from stored events and messages, never kept in memory."""
