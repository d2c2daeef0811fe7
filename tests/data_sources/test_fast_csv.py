"""The fast CSV path (`np.loadtxt`) reads exactly what the `csv` module path reads."""

from __future__ import annotations

import time

import numpy as np
import pytest

from trainkit.data.sources import formats

CASES = {
    "integers": "1,2\n3,4\n",
    "header": "a,b\n1,2\n3,4\n",
    "blank lines": "\n1,2\n\n3,4\n\n",
    "windows line ends": "1,2\r\n3,4\r\n",
    "spaces and signs": " 1 ,+2\n-3,\t4\n",
    "decimals": "0.1,2\n3,1e-3\n",
    "one column": "1\n2\n3\n",
    "one row": "1.5,2.5,3.5\n",
    "int64 limits": "9223372036854775807\n-9223372036854775808\n",
    "big integers mixed with decimals": "9007199254740993,1.5\n",
    "beyond int64": "9223372036854775808\n",
    "overflow to inf": "1e400,1\n",
    "nan": "nan,1\n",
    "quoted": '"1","2"\n',
    "ragged": "1,2\n3\n",
    "a blank cell": "1,,2\n",
    "whitespace line": "1,2\n  \n3,4\n",
    "text": "1,x\n",
    "underscores": "1_000,2\n",
    "header only": "a,b\n",
}


def outcome(read, path):
    try:
        values = read(str(path))
    except ValueError as error:
        return ("error", str(error))
    return (values.dtype.str, values.shape, values.tobytes())


@pytest.mark.parametrize("text", CASES.values(), ids=CASES.keys())
def test_the_fast_csv_path_gives_the_values_and_errors_of_the_csv_module_path(tmp_path, text):
    path = tmp_path / "x.csv"
    path.write_bytes(text.encode())
    expected = outcome(lambda p: formats.csv_rows(formats.read_csv(p)), path)
    assert outcome(formats.load_csv_rows, path) == expected


def test_a_large_numeric_csv_is_parsed_several_times_faster(tmp_path):
    path = tmp_path / "x.csv"
    values = np.random.default_rng(0).random((10_000, 40))
    np.savetxt(path, values, delimiter=",", fmt="%.6f")
    start = time.perf_counter()
    fast = formats.load_csv_rows(str(path))
    fast_s = time.perf_counter() - start
    start = time.perf_counter()
    slow = formats.csv_rows(formats.read_csv(str(path)))
    slow_s = time.perf_counter() - start
    assert fast.tobytes() == slow.tobytes()
    assert fast_s < slow_s / 2, f"fast {fast_s:.3f} s, csv module {slow_s:.3f} s"
