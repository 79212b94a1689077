"""``predict --timeline``: windows of a long video from one sequential decode and their
segments (``windows``), the tables and the picture written per video (``files``), and the
command line (``cli``)."""
