"""The stream benchmark of paper 002 §3 (Table 2): `trautoml bench`.

* `runner`: `run_bench`, every method ingesting the same stream in the same orders, and its presets;
* `metrics`: the accounting (cost, relative errors, aggregates over stream orders);
* `report`: the Markdown table and the pictures.
"""

__all__ = ["metrics", "report", "runner"]
