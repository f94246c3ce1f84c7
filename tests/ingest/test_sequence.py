"""Gaps and duplicates derived from stored batch seqs: right whichever worker received which batch."""

from ingest.sequence import count_sequences


def batches(*seqs, t0=0.0):
    return [(t0 + i, "batch", s) for i, s in enumerate(seqs)]


def test_gaps_and_duplicates_in_one_run():
    c = count_sequences(batches(0, 1, 2, 5, 5, 3, 6))
    # 4 is missing; 5 came twice; 3 arriving late fills its gap rather than counting as a duplicate.
    assert (c.batches, c.gaps, c.duplicates) == (7, 1, 1)


def test_order_of_arrival_does_not_matter():
    """Two workers store their batches interleaved in any order: the counts are the same."""
    assert count_sequences(batches(3, 0, 2, 1, 4)) == count_sequences(batches(0, 1, 2, 3, 4))
    assert count_sequences(batches(3, 0, 2, 1, 4)).gaps == 0


def test_a_birth_with_a_lower_seq_starts_a_new_run():
    events = [*batches(10, 11, 12), (2.5, "birth", 0), *batches(0, 1, t0=3.0)]
    c = count_sequences(events)
    assert (c.gaps, c.duplicates) == (0, 0)


def test_a_reconnect_birth_does_not_split_the_run():
    events = [*batches(0, 1, 2), (2.5, "birth", 3), *batches(4, t0=3.0)]
    assert count_sequences(events).gaps == 1  # 3 never arrived
