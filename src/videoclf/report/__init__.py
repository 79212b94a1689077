"""The report wing: the plot stage's PNGs (``plot``) and the offline page template of
``dvc plots show`` (``offline_page``). No TensorFlow here.
"""
