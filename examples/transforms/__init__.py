"""Example transforms. Run one from the project folder (the pipe root):

    datapipe run words counts examples.transforms.wordcount.WordCount min_length=3
"""
