"""Club code written the way the club writes it, used unchanged by the tests."""
