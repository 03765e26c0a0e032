"""Preparing any image of digits the way MNIST's digits were prepared.

MNIST: white ink on black, each digit's bounding box scaled (anti-aliased, aspect kept) to fit
20x20, then placed in a 28x28 field with its centre of mass at (14.0, 14.0) in index coordinates
(the mean over MNIST's own digits). A photo of a written number, a scan or a drawing on a white
canvas is none of these; `prepare_digits` makes it so, one 28x28 field per digit, left to right.
The CLI, the HTTP API and the draw-a-digit page all call it.

Steps (scipy.ndimage for the filters, morphology and labelling):
1. first frame, EXIF rotation, alpha composited onto a background the ink contrasts with, grey,
   reduced to at most 512 pixels a side;
2. a grainy photo (dim light: 3x3 neighbourhoods varying by more than 3 grey levels) is smoothed first;
   a sheet of paper darker than the white table around it is read alone (the table given its level);
   polarity: a white border means dark ink (invert), a black one as dark as the darkest of the image
   light ink (unless a written sheet lies on it); otherwise the ink is the side, dark or light,
   with more thin structures (top-hats over growing windows: strokes are long and narrow, a glare
   spot or a shadow is not), which also tells how wide the strokes are;
3. background removed: a grey opening just wider than the strokes follows the paper's uneven light,
   shadows and their edges, and is subtracted; dark ink in shadow has its contrast lifted as if in
   full light; light smoothing removes grain and JPEG noise;
4. ink separated from paper by Otsu's threshold on what remains; straight lines that cannot be part
   of a digit (an underline, the lines of ruled paper, the boxes of a form) taken out, keeping where
   strokes cross them; specks (components with far less ink than the largest), thick regions at or
   near the edge (a table beyond the paper), faint or soft ones near it (light the background
   estimate left near a photo's edge) and far larger ones (the paper's edge) dropped; ink in a small
   part of a large image (a number in a photo of a page) is looked at again from the source, on its own,
   and digits under 20 pixels tall (small print, a screenshot) enlarged by interpolation; the dots
   of dot-matrix print (many alike small dots in rows, a receipt) joined into strokes (dots.py);
5. components grouped into digits: pieces that overlap horizontally are one digit (a broken
   stroke), a piece far shorter than the row's digits joins its neighbour, and one piece of ink
   much wider than the row is tall is split at a clearly thinnest column (touching digits); marks
   alone are punctuation, and in a printed row (its digits on two lines) a bracket, a dollar sign,
   a plus, a number sign, a percent sign or a dash is a symbol: neither is read; a piece too little
   wider than tall to split for its shape, but wide enough to be two digits touching (a narrow 1
   against a 7), is prepared both whole and cut at a few of its thinnest columns (`splits`): a
   reader with a model keeps the halves where it is much surer of both than of the whole;
6. a row whose digits' centres slope more than 8 degrees (a photo taken with the camera turned) has
   its digits turned back by the slope past that, to within what the models learned;
7. each digit: strokes thickened where they would be thinner than MNIST's after scaling, cropped,
   fitted into 20x20, shifted by a sub-pixel amount so its centre of mass is at (14.0, 14.0).

Modules, in the order an image goes through them: loading (file -> grey array), ink (-> ink map),
lines (straight lines that are no digit taken out), dots (dot-matrix print joined), pieces (-> digits;
symbols: what in a printed row is no digit), fitting (-> 28x28 field); measures holds what several of
them measure; reading runs them.
"""

from digitnet.imageprep.ink import ink_map
from digitnet.imageprep.lines import without_rulings
from digitnet.imageprep.loading import IMAGE_SUFFIXES, MAX_PIXELS, ImageError, image_files, open_image
from digitnet.imageprep.reading import PreparedDigit, prepare, prepare_digits, read_digits

__all__ = ["IMAGE_SUFFIXES", "MAX_PIXELS", "ImageError", "PreparedDigit", "image_files", "ink_map", "open_image", "prepare",
           "prepare_digits", "read_digits", "without_rulings"]
