"""Agent tools that read one pinned snapshot of live customer features."""
