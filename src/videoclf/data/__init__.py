"""The data wing: where videos come from and what the first two stages make of them.

``sources`` (built-in generator, folder, zip, zip over HTTP through ``http_range``), ``splits``
(layouts, groups, class selection, the group split), ``download`` (the download stage) and
``extract`` (the extract stage: NPY shards and their index). No TensorFlow here.
"""
