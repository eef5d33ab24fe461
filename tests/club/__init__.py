"""Club code written the way the monitoring document shows, used unchanged by the tests."""
