"""VideoJob operator: turns VideoJob resources into Manim videos.

Layers (imports point one way, top to bottom):
    cli, controller  ->  run  ->  agents, pipeline  ->  storage  ->  api, config
"""

__version__ = "0.1.0"
