"""Keras models of the paper: stage-1 autoencoder, stage-2 head, classifiers.

- `ConvAutoencoder`: Table 2's convolutional autoencoder; `.encoder` is stage 1's product.
- `SequenceHead`: BiLSTM (or LSTM/GRU) over a song's segment embeddings.
- `TwoStageClassifier`: frozen encoder on each segment + head (the paper's model).
- `CnnBiLstmBaseline`: the same CNN and head trained jointly (the paper's baseline).
- `SegmentEncoder`: the layer that runs a segment encoder over every segment.
- `UpSamplingConv2D`: 2x nearest upsampling and a 3x3 convolution as one layer (the decoder's).
"""

from mer_tfx.models.cnn_bilstm_baseline import CnnBiLstmBaseline
from mer_tfx.models.conv_autoencoder import ActivityL2, ConvAutoencoder, embedding_dim
from mer_tfx.models.segment_encoder import SegmentEncoder
from mer_tfx.models.sequence_head import SequenceHead
from mer_tfx.models.two_stage_classifier import TwoStageClassifier
from mer_tfx.models.upsampling_conv import UpSamplingConv2D

__all__ = [
    "ActivityL2",
    "CnnBiLstmBaseline",
    "ConvAutoencoder",
    "SegmentEncoder",
    "SequenceHead",
    "TwoStageClassifier",
    "UpSamplingConv2D",
    "embedding_dim",
]
