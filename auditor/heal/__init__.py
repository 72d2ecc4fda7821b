"""Watch-driven self-heal between full passes: pure decisions and their orchestration."""
