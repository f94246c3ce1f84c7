from core.senml import Reading
from edge.reading_buffer import ReadingBuffer


def r(i):
    return Reading("d", "m", float(i), 1.0)


def test_fifo_take_and_put_back_keep_order():
    buf = ReadingBuffer(10)
    buf.extend(r(i) for i in range(5))
    first = buf.take(3)
    assert [x.value for x in first] == [0.0, 1.0, 2.0]
    buf.put_back(first)
    assert [x.value for x in buf.take(10)] == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_the_bound_drops_the_oldest_and_counts_them():
    buf = ReadingBuffer(3)
    buf.extend(r(i) for i in range(5))
    assert buf.dropped == 2
    assert [x.value for x in buf.take(10)] == [2.0, 3.0, 4.0]
