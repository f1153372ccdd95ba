# Loss plots: train writes loss.png/loss.svg, `shardtune plot` overlays runs
# and refuses what it cannot read.
TESTS += tests/plot/loss_plot.sh
EXTRA_DIST += tests/plot/loss_plot.sh tests/plot/check_plot.py
