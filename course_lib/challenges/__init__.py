"""Chapter 6, part 2: data and trust, each problem a measured experiment on the course's data.

- ``imbalance``      resampling, class weights, focal loss, threshold tuning, calibration
- ``overfitting``    learning curves and the remedies (weight decay, dropout, early stopping, augmentation)
- ``model_choice``   the measured table of the models available offline
- ``attribution``    gradient x input, integrated gradients, LIME-style perturbation, KernelSHAP, deletion test
- ``chinese``        segmentation, tokenizer fertility and a Chinese sentiment classifier

Import the submodules directly, e.g. ``from course_lib.challenges import imbalance``.
"""
