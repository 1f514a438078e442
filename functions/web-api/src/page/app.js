/* The preferences page: written in the page slice of issue 7. */
