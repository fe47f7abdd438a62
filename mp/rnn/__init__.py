"""Chapter 4: recurrent networks (cells, backpropagation through time, sequence tasks).

Course: ch4 Recurrent Neural Networks.
"""
