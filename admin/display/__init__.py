"""Values as people read them: money, times in the reader's zone, counts in words."""
