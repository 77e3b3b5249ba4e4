// One column of the side-by-side comparison: title, overlay picture, kept count, answer, figures.
//
// Purely a view: the window pushes the overlay image, the answer HTML and the figures in.
#pragma once

#include <QFrame>
#include <QString>

#include "ui/figuremodel.h"

class QLabel;
class QTextBrowser;

namespace dlui {

class OverlayView;

class MethodColumn : public QFrame {
    Q_OBJECT
public:
    MethodColumn(const QString& title, const QString& method, QWidget* parent = nullptr);

    QString title() const { return m_title; }
    QString method() const { return m_method; }
    OverlayView* view() const { return m_view; }

    void setSubtitle(const QString& text);   // config label ("dart K=2 R=0.778")
    void setKeptText(const QString& text);
    void setAnswerHtml(const QString& html, bool stale);
    void setFigures(const Figures* figures);  // nullptr: no run yet
    QString answerPlainText() const;
    QString figuresText() const;

private:
    QString m_title, m_method;
    QLabel* m_titleLabel = nullptr;
    QLabel* m_subtitle = nullptr;
    QLabel* m_kept = nullptr;
    OverlayView* m_view = nullptr;
    QTextBrowser* m_answer = nullptr;
    QLabel* m_figures = nullptr;
};

}  // namespace dlui
