"""Deep Ensemble Lab: the dashboard's entry point (router + shared chrome)."""

import streamlit as st

st.set_page_config(page_title="Deep Ensemble Lab", page_icon="🎯", layout="wide")
st.title("Deep Ensemble Lab")
st.write("The dashboard is being built.")
