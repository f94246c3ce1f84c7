from ingest.sequence import SequenceTracker


def test_gaps_and_duplicates_are_counted_per_gateway():
    t = SequenceTracker()
    for seq in (0, 1, 2, 5, 5, 3, 6):
        t.observe("a", seq)
    t.observe("b", 0)
    assert (t.stats.gaps, t.stats.duplicates) == (2, 2)


def test_restart_resets_the_expectation():
    t = SequenceTracker()
    t.observe("a", 10)
    t.restart("a")
    t.observe("a", 0)
    t.observe("a", 1)
    assert (t.stats.gaps, t.stats.duplicates) == (0, 0)
