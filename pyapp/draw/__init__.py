"""Drawing components shared by the views: the Scene contract, heatmaps, matrices, typeset maths and the
colour maps. Pure Python + numpy; the backends that draw a Scene are pyapp/browser/canvas.py and
pyapp/raster.py."""
