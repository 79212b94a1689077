"""The built-in data set: its styles' class names (``styles``), the generator of the
scene, camera and object styles (``generator``) and the (scene, motion) style (``context``).
The download stage treats it as a zip: list, select, fetch (``data.readers``)."""
