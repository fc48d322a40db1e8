"""The platform's benchmarks, one module each, run by ``python -m medlake.bench`` (``make bench``) in a fresh process
per benchmark. They generate their inputs with :mod:`medlake.synth` and measure with :mod:`medlake.bench.measure`;
the library never imports this package."""
