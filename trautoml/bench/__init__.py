"""The stream benchmark of paper 002 §3 (Table 2): `trautoml bench`."""
